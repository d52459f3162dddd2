"""Value pools for the demo universe: names, streets, cities, e-mail domains, phone prefixes,
nicknames and the QWERTY neighbour map. Built once (:func:`pools`) into numpy arrays so the
generator samples by index, never per row through a fake-data library.

Sources of the knowledge (all hand-compiled, no data files copied):

* given names and surnames: the most frequent names per country as published in public
  statistics summaries (US Census / SSA top names, ONS baby names, PESEL registry name
  frequency lists, INE "nombres y apellidos más frecuentes", German surname frequency lists as
  summarised on Wikipedia), typed from general knowledge; order approximates frequency, the
  generator weights them with a Zipf-like curve;
* streets, cities, regions, postcode prefixes and area codes: common public knowledge of the
  five countries' postal and numbering plans (postcode district / PLZ / CP / kod pocztowy
  prefixes per city, geographic area codes per city);
* mobile prefixes: national numbering plans; every prefix is validated with ``phonenumbers`` at
  build time (invalid ones are dropped), so generated numbers parse as valid;
* nicknames/diminutives: common English hypocorisms (cf. Wikipedia "List of English-language
  hypocorisms"), Polish zdrobnienia (cf. Wikipedia "Polish name"), Spanish hipocorísticos (cf.
  Wikipedia "Hipocorístico" for Pepe/Paco/Nacho/Lola/Pili/Concha) and German Kurzformen;
  hand-compiled, not exhaustive.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

COUNTRIES = ("US", "GB", "PL", "ES", "DE")
COUNTRY_WEIGHTS = (0.30, 0.20, 0.20, 0.15, 0.15)
LOCALES = ("en_US", "en_GB", "pl_PL", "es_ES", "de_DE")
COUNTRY_LOCALE = dict(zip(COUNTRIES, LOCALES))
CURRENCY = {"US": "USD", "GB": "GBP", "PL": "PLN", "ES": "EUR", "DE": "EUR"}
CALLING_CODE = {"US": "1", "GB": "44", "PL": "48", "ES": "34", "DE": "49"}
# median annual income in local currency (rough, for a plausible spread only)
INCOME_MEDIAN = {"US": 58000, "GB": 34000, "PL": 72000, "ES": 26000, "DE": 45000}
# married women take the husband's surname (Spain keeps both surnames for life)
SURNAME_CHANGE_AT_MARRIAGE = {"US": 0.80, "GB": 0.75, "PL": 0.85, "ES": 0.0, "DE": 0.70}


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.replace("\n", "|").split("|") if t.strip()]


FIRST_NAMES: dict[str, dict[str, list[str]]] = {
    "en_US": {
        "M": _split("""James|John|Robert|Michael|William|David|Richard|Joseph|Thomas|Charles|
            Christopher|Daniel|Matthew|Anthony|Mark|Donald|Steven|Paul|Andrew|Joshua|Kenneth|
            Kevin|Brian|George|Timothy|Ronald|Edward|Jason|Jeffrey|Ryan|Jacob|Gary|Nicholas|Eric|
            Jonathan|Stephen|Larry|Justin|Scott|Brandon|Benjamin|Samuel|Gregory|Alexander|Frank|
            Patrick|Raymond|Jack|Dennis|Jerry|Tyler|Aaron|Jose|Adam|Nathan|Henry|Douglas|Zachary|
            Peter|Kyle|Ethan|Walter|Noah|Jeremy|Christian|Keith|Roger|Terry|Gerald|Harold|Sean|
            Austin|Carl|Arthur|Lawrence|Dylan|Jesse|Jordan|Bryan|Billy|Joe|Bruce|Gabriel|Logan|
            Albert|Willie|Alan|Juan|Wayne|Elijah|Randy|Roy|Vincent|Ralph|Eugene|Russell|Bobby|
            Mason|Philip|Louis"""),
        "F": _split("""Mary|Patricia|Jennifer|Linda|Elizabeth|Barbara|Susan|Jessica|Sarah|Karen|
            Lisa|Nancy|Betty|Margaret|Sandra|Ashley|Kimberly|Emily|Donna|Michelle|Carol|Amanda|
            Dorothy|Melissa|Deborah|Stephanie|Rebecca|Sharon|Laura|Cynthia|Kathleen|Amy|Angela|
            Shirley|Anna|Brenda|Pamela|Emma|Nicole|Helen|Samantha|Katherine|Christine|Debra|
            Rachel|Carolyn|Janet|Catherine|Maria|Heather|Diane|Ruth|Julie|Olivia|Joyce|Virginia|
            Victoria|Kelly|Lauren|Christina|Joan|Evelyn|Judith|Megan|Andrea|Cheryl|Hannah|
            Jacqueline|Martha|Gloria|Teresa|Ann|Sara|Madison|Frances|Kathryn|Janice|Jean|Abigail|
            Alice|Judy|Sophia|Grace|Denise|Amber|Doris|Marilyn|Danielle|Beverly|Isabella|Theresa|
            Diana|Natalie|Brittany|Charlotte|Marie|Kayla|Alexis|Lori"""),
    },
    "en_GB": {
        "M": _split("""David|John|Paul|Andrew|Mark|James|Richard|Peter|Michael|Stephen|
            Christopher|Robert|Matthew|Daniel|Thomas|William|Oliver|George|Harry|Jack|Jacob|Noah|
            Charlie|Oscar|Henry|Leo|Alfie|Joshua|Freddie|Archie|Ethan|Isaac|Alexander|Joseph|
            Edward|Samuel|Max|Arthur|Lucas|Mohammed|Logan|Theo|Harrison|Benjamin|Mason|Sebastian|
            Finley|Adam|Dylan|Zachary|Riley|Teddy|Toby|Ian|Gary|Simon|Neil|Graham|Stuart|Colin|
            Nigel|Keith|Barry|Trevor|Alan|Kevin|Martin|Gareth|Rhys|Callum|Liam|Connor|Jamie|Ross|
            Craig|Dominic|Rupert|Hugh|Angus|Declan"""),
        "F": _split("""Sarah|Emma|Claire|Rebecca|Laura|Helen|Karen|Susan|Elizabeth|Margaret|
            Olivia|Amelia|Isla|Ava|Emily|Sophia|Grace|Mia|Poppy|Ella|Lily|Evie|Isabella|Sophie|
            Ivy|Freya|Harper|Willow|Charlotte|Jessica|Hannah|Lucy|Katie|Chloe|Megan|Amy|Rachel|
            Lauren|Gemma|Nicola|Jacqueline|Deborah|Joanne|Victoria|Catherine|Alison|Julie|Louise|
            Zoe|Kirsty|Fiona|Siobhan|Eleanor|Harriet|Imogen|Abigail|Jennifer|Patricia|Pauline|
            Gillian|Wendy|Janet|Shirley|Beverley|Dawn|Tracey|Sharon|Samantha|Natalie|Bethany|
            Niamh|Aoife|Rhiannon|Morag"""),
    },
    "pl_PL": {
        "M": _split("""Jan|Andrzej|Piotr|Krzysztof|Stanisław|Tomasz|Paweł|Józef|Marcin|Marek|
            Michał|Grzegorz|Jerzy|Tadeusz|Adam|Łukasz|Zbigniew|Ryszard|Dariusz|Henryk|Mariusz|
            Kazimierz|Wojciech|Robert|Mateusz|Marian|Rafał|Jacek|Janusz|Mirosław|Maciej|Sławomir|
            Jarosław|Kamil|Wiesław|Roman|Władysław|Jakub|Artur|Zdzisław|Edward|Mieczysław|Damian|
            Dawid|Przemysław|Sebastian|Czesław|Leszek|Daniel|Waldemar|Aleksander|Bartłomiej|
            Szymon|Filip|Wiktor|Bogdan|Zenon|Hubert|Kacper|Igor|Oskar|Patryk|Konrad|Witold|
            Bartosz|Radosław|Zygmunt|Bogusław|Ireneusz|Józef"""),
        "F": _split("""Anna|Maria|Katarzyna|Małgorzata|Agnieszka|Krystyna|Barbara|Ewa|Elżbieta|
            Zofia|Janina|Teresa|Joanna|Magdalena|Monika|Jadwiga|Danuta|Irena|Halina|Helena|Beata|
            Aleksandra|Marta|Dorota|Marianna|Grażyna|Jolanta|Stanisława|Iwona|Karolina|Bożena|
            Urszula|Justyna|Renata|Alicja|Paulina|Sylwia|Natalia|Wanda|Agata|Aneta|Izabela|
            Ewelina|Marzena|Wiesława|Genowefa|Patrycja|Kazimiera|Edyta|Stefania|Żaneta|Łucja|
            Weronika|Gabriela|Zuzanna|Julia|Wiktoria|Oliwia|Hanna|Kinga|Dominika|Emilia|Jagoda|
            Małgorzata|Bogumiła"""),
    },
    "es_ES": {
        "M": _split("""Antonio|José|Manuel|Francisco|David|Juan|Javier|José Antonio|Daniel|
            José Luis|Francisco Javier|Carlos|Jesús|Alejandro|Miguel|José Manuel|Rafael|Pedro|
            Ángel|Pablo|Miguel Ángel|Sergio|Fernando|Jorge|Luis|Alberto|Álvaro|Juan Carlos|Adrián|
            Diego|Raúl|Enrique|Ramón|Vicente|Iván|Rubén|Óscar|Andrés|Joaquín|Santiago|Eduardo|
            Víctor|Roberto|Jaime|Mario|Ignacio|Alfonso|Salvador|Ricardo|Marcos|Jordi|Emilio|
            Julián|Guillermo|Gonzalo|Tomás|Agustín|Hugo|Iñaki|Íñigo|Nicolás|Xavier"""),
        "F": _split("""María Carmen|María|Carmen|Ana María|Laura|María Pilar|Isabel|Josefa|
            María Dolores|Cristina|Marta|María Teresa|Ana|Lucía|Francisca|Pilar|Dolores|Sara|
            Paula|Elena|Antonia|Raquel|Manuela|Rosa María|Mercedes|Concepción|Beatriz|Rosario|
            Juana|Teresa|Encarnación|Nuria|Silvia|Julia|Irene|Patricia|Montserrat|Rocío|Alba|
            Andrea|Inmaculada|Mónica|Begoña|Sonia|Yolanda|Ángela|Noelia|Verónica|Eva|Alicia|
            Sofía|Inés|Marina|Susana|Esther|Natalia|Claudia|Consuelo|Lourdes|Remedios|Ainhoa|
            Nerea|Itziar"""),
    },
    "de_DE": {
        "M": _split("""Peter|Michael|Thomas|Andreas|Wolfgang|Klaus|Jürgen|Stefan|Günter|Hans|
            Uwe|Werner|Frank|Christian|Horst|Dieter|Manfred|Bernd|Gerhard|Helmut|Markus|Matthias|
            Martin|Heinz|Sven|Ralf|Jörg|Alexander|Sebastian|Daniel|Tobias|Florian|Jan|Tim|Lukas|
            Jonas|Leon|Felix|Maximilian|Paul|Niklas|Johannes|Johann|Karl|Friedrich|Wilhelm|
            Heinrich|Rüdiger|Björn|Lars|Kai|Dirk|Holger|Torsten|Olaf|Norbert|Volker|Rainer|Armin|
            Detlef|Jens|Marco|Dennis|Philipp|Moritz|Benedikt|Götz"""),
        "F": _split("""Ursula|Monika|Petra|Sabine|Renate|Helga|Karin|Brigitte|Ingrid|Erika|
            Andrea|Gisela|Claudia|Susanne|Gabriele|Christa|Christine|Elisabeth|Stefanie|Birgit|
            Julia|Anna|Maria|Nicole|Katharina|Sandra|Marion|Heike|Barbara|Angelika|Martina|Anja|
            Jutta|Kerstin|Doris|Sarah|Laura|Lea|Lena|Hannah|Sophie|Emma|Mia|Jana|Jessica|Melanie|
            Silke|Tanja|Annegret|Hildegard|Gertrud|Käthe|Jördis|Bärbel|Dörte|Franziska|Johanna|
            Charlotte|Magdalena|Greta|Frieda|Marlene"""),
    },
}

SURNAMES: dict[str, list[str]] = {
    "en_US": _split("""Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Rodriguez|Martinez|
        Hernandez|Lopez|Gonzalez|Wilson|Anderson|Thomas|Taylor|Moore|Jackson|Martin|Lee|Perez|
        Thompson|White|Harris|Sanchez|Clark|Ramirez|Lewis|Robinson|Walker|Young|Allen|King|Wright|
        Scott|Torres|Nguyen|Hill|Flores|Green|Adams|Nelson|Baker|Hall|Rivera|Campbell|Mitchell|
        Carter|Roberts|Gomez|Phillips|Evans|Turner|Diaz|Parker|Cruz|Edwards|Collins|Reyes|Stewart|
        Morris|Morales|Murphy|Cook|Rogers|Gutierrez|Ortiz|Morgan|Cooper|Peterson|Bailey|Reed|
        Kelly|Howard|Ramos|Kim|Cox|Ward|Richardson|Watson|Brooks|Chavez|Wood|James|Bennett|Gray|
        Mendoza|Ruiz|Hughes|Price|Alvarez|Castillo|Sanders|Patel|Myers|Long|Ross|Foster|Jimenez|
        O'Brien|O'Connor|McDonald|Sullivan|Powell|Jenkins|Perry|Russell|Butler|Barnes|Fisher|
        Henderson|Coleman|Simmons|Patterson|Jordan|Reynolds|Hamilton|Graham|Wallace|Cole|West|
        Hayes|Bryant|Gibson|Ellis|Stevens|Murray|Ford|Marshall|Owens|McKenzie|Kowalski|Schmidt"""),
    "en_GB": _split("""Smith|Jones|Williams|Taylor|Brown|Davies|Evans|Wilson|Thomas|Johnson|
        Roberts|Robinson|Thompson|Wright|Walker|White|Edwards|Hughes|Green|Hall|Lewis|Harris|
        Clarke|Patel|Jackson|Wood|Turner|Martin|Cooper|Hill|Ward|Morris|Moore|Clark|Lee|King|
        Baker|Harrison|Morgan|Allen|James|Scott|Phillips|Watson|Davis|Parker|Price|Bennett|Young|
        Griffiths|Mitchell|Kelly|Cook|Carter|Richardson|Bailey|Collins|Bell|Shaw|Murphy|Miller|
        Cox|Richards|Khan|Marshall|Anderson|Simpson|Ellis|Adams|Singh|Begum|Wilkinson|Foster|
        Chapman|Powell|Webb|Rogers|Gray|Mason|Ali|Hunt|Hussain|Campbell|Matthews|Owen|Palmer|
        Holmes|Mills|Barnes|Knight|Lloyd|Butler|Russell|Barker|Fisher|Stevens|Jenkins|Murray|
        Dixon|Harvey|Graham|Pearson|Ahmed|Fletcher|Walsh|Kaur|Gibson|Howard|Andrews|Stewart|
        Elliott|Reynolds|Saunders|Payne|Fox|Ford|Pearce|Day|Brooks|West|Lawrence|Cole|Atkinson|
        Bradley|Spencer|Gill|Dawson|Ball|Burton|O'Brien|Watts|Rose|Booth|Perry|Ryan|Grant|Wells|
        Armstrong|Francis|Rees|Hayes|Hart|Hudson|Newman|Barrett|Webster|Hunter|Gregory|Carr|Lowe|
        McDonald|MacLeod|Fitzgerald"""),
    # Polish surnames are listed in the masculine form; the feminine is derived (-ski -> -ska,
    # -cki -> -cka, -dzki -> -dzka, -ny -> -na), see _polish_feminine.
    "pl_PL": _split("""Nowak|Kowalski|Wiśniewski|Wójcik|Kowalczyk|Kamiński|Lewandowski|Zieliński|
        Szymański|Woźniak|Dąbrowski|Kozłowski|Jankowski|Mazur|Wojciechowski|Kwiatkowski|Krawczyk|
        Kaczmarek|Piotrowski|Grabowski|Zając|Pawłowski|Michalski|Król|Wieczorek|Ćwikliński|Jabłoński|Wróbel|
        Nowakowski|Majewski|Olszewski|Stępień|Malinowski|Jaworski|Adamczyk|Dudek|Nowicki|Pawlak|
        Górski|Witkowski|Walczak|Sikora|Baran|Rutkowski|Michalak|Szewczyk|Ostrowski|Tomaszewski|
        Pietrzak|Zalewski|Wróblewski|Marciniak|Jasiński|Zawadzki|Bąk|Jakubowski|Sadowski|Duda|
        Włodarczyk|Wilk|Chmielewski|Borkowski|Sokołowski|Szczepański|Sawicki|Lis|Kucharski|
        Kalinowski|Wysocki|Mazurek|Kubiak|Maciejewski|Czarnecki|Kołodziej|Urbański|Kaźmierczak|
        Sobczak|Konieczny|Głowacki|Zakrzewski|Krajewski|Krupa|Laskowski|Ziółkowski|Gajewski|Mróz|
        Brzeziński|Szulc|Makowski|Przybylski|Kaczmarczyk|Czerwiński|Żak|Żukowski|Łuczak|
        Ślusarczyk|Gołębiowski|Błaszczyk|Grzelak|Chojnacki|Kurek|Śliwiński"""),
    # Spanish persons carry two surnames (padre + madre), sampled independently from this list.
    "es_ES": _split("""García|Rodríguez|González|Fernández|López|Martínez|Sánchez|Pérez|Gómez|
        Martín|Jiménez|Ruiz|Hernández|Díaz|Moreno|Muñoz|Álvarez|Romero|Alonso|Gutiérrez|Navarro|
        Torres|Domínguez|Vázquez|Ramos|Gil|Ramírez|Serrano|Blanco|Molina|Morales|Suárez|Ortega|
        Delgado|Castro|Ortiz|Rubio|Marín|Sanz|Núñez|Iglesias|Medina|Garrido|Cortés|Castillo|
        Santos|Lozano|Guerrero|Cano|Prieto|Méndez|Cruz|Calvo|Gallego|Herrera|Márquez|León|Peña|
        Flores|Cabrera|Campos|Vega|Fuentes|Carrasco|Díez|Caballero|Reyes|Nieto|Aguilar|Pascual|
        Santana|Herrero|Montero|Lorenzo|Hidalgo|Giménez|Ibáñez|Ferrer|Durán|Santiago|Benítez|
        Vidal|Mora|Arias|Vicente|Carmona|Crespo|Román|Pastor|Soto|Sáez|Velasco|Moya|Soler|Parra|
        Esteban|Bravo|Gallardo|Rojas|Pardo|Merino|Franco|Espinosa|Izquierdo|Lara|Rivas|Silva|
        Rivera|Casado|Arroyo|Redondo|Camacho|Rey|Vera|Otero|Luque|Galán|Montes|Ríos|Sierra|
        Segura|Carrillo|Marcos|Soriano|Mendoza|Echeverría|Zubizarreta|Ibarra|Etxeberria|Peñalver"""),
    "de_DE": _split("""Müller|Schmidt|Schneider|Fischer|Weber|Meyer|Wagner|Becker|Schulz|
        Hoffmann|Schäfer|Koch|Bauer|Richter|Klein|Wolf|Schröder|Neumann|Schwarz|Zimmermann|Braun|
        Krüger|Hofmann|Hartmann|Lange|Schmitt|Werner|Schmitz|Krause|Meier|Lehmann|Schmid|Schulze|
        Maier|Köhler|Herrmann|König|Walter|Mayer|Huber|Kaiser|Fuchs|Peters|Lang|Scholz|Möller|
        Weiß|Jung|Hahn|Schubert|Vogel|Friedrich|Keller|Günther|Frank|Berger|Winkler|Roth|Beck|
        Lorenz|Baumann|Franke|Albrecht|Schuster|Simon|Ludwig|Böhm|Winter|Kraus|Martin|Schumacher|
        Krämer|Vogt|Stein|Jäger|Otto|Sommer|Groß|Seidel|Heinrich|Brandt|Haas|Schreiber|Graf|
        Schulte|Dietrich|Ziegler|Kuhn|Kühn|Pohl|Engel|Horn|Busch|Bergmann|Thomas|Voigt|Sauer|
        Arnold|Wolff|Pfeiffer|Löffler|Gärtner|Jürgens|Dörr|Glöckner|Mößner|Nußbaum|Özdemir|
        Yılmaz|Kowalski"""),
}

# Street name pools per country; {n} is the house number, {a} an apartment/flat/floor.
STREETS: dict[str, list[str]] = {
    "US": [f"{n} {s}" for n, s in [
        ("Main", "Street"), ("Oak", "Street"), ("Pine", "Street"), ("Maple", "Avenue"),
        ("Cedar", "Lane"), ("Elm", "Street"), ("Washington", "Avenue"), ("Lake", "Drive"),
        ("Hill", "Road"), ("Park", "Avenue"), ("Walnut", "Street"), ("Sunset", "Boulevard"),
        ("Lincoln", "Avenue"), ("Jackson", "Street"), ("Church", "Street"), ("River", "Road"),
        ("Highland", "Avenue"), ("Ridge", "Road"), ("Chestnut", "Street"), ("Spring", "Street"),
        ("Madison", "Avenue"), ("Jefferson", "Street"), ("Franklin", "Street"), ("Center", "Street"),
        ("Willow", "Lane"), ("Meadow", "Lane"), ("Forest", "Drive"), ("Cherry", "Lane"),
        ("Hickory", "Court"), ("Magnolia", "Drive"), ("Lakeview", "Drive"), ("Mill", "Road"),
        ("Valley", "Road"), ("Prospect", "Place"), ("Summit", "Avenue"), ("Broad", "Street"),
        ("Market", "Street"), ("Union", "Street"), ("Harrison", "Street"), ("Cypress", "Court"),
    ]],
    "GB": _split("""High Street|Station Road|Main Street|Park Road|Church Road|Church Street|
        London Road|Victoria Road|Green Lane|Manor Road|Church Lane|Park Avenue|The Avenue|
        The Crescent|Queens Road|New Road|Grange Road|Kings Road|Kingsway|Windsor Road|
        Highfield Road|Mill Lane|Alexandra Road|York Road|St John's Road|Main Road|Broadway|
        King Street|The Green|Springfield Road|George Street|Park Lane|Victoria Street|Albert Road|
        Queensway|New Street|Queen Street|West Street|North Street|Manchester Road"""),
    "PL": _split("""ul. Marszałkowska|ul. Długa|ul. Polna|ul. Leśna|ul. Słoneczna|ul. Krótka|
        ul. Szkolna|ul. Ogrodowa|ul. Lipowa|ul. Brzozowa|ul. Łąkowa|ul. Kwiatowa|ul. Kościuszki|
        ul. Mickiewicza|ul. Sienkiewicza|ul. Słowackiego|ul. Piłsudskiego|ul. Kolejowa|
        ul. Wiśniowa|ul. Jana Pawła II|ul. Kopernika|ul. Żeromskiego|ul. Konopnickiej|
        ul. Źródlana|ul. Grunwaldzka|ul. Świętokrzyska|ul. Żwirki i Wigury|al. Jerozolimskie|
        al. Niepodległości|ul. Wolności|ul. Chopina|ul. Prusa|ul. Reymonta|ul. Różana|
        ul. Jaśminowa|ul. Ściegiennego|ul. Gdańska|ul. Toruńska"""),
    "ES": _split("""Calle Mayor|Calle Real|Calle de Alcalá|Gran Vía|Calle Nueva|Calle del Sol|
        Avenida de la Constitución|Calle San José|Calle de Goya|Paseo de la Castellana|
        Calle Iglesia|Calle Toledo|Avenida de Andalucía|Calle Cervantes|Calle Santiago|
        Calle Ramón y Cajal|Calle Doctor Fleming|Calle Núñez de Balboa|Calle de Velázquez|
        Rambla de Catalunya|Carrer de Mallorca|Carrer d'Aragó|Calle Larios|Calle Colón|
        Avenida Diagonal|Calle Echegaray|Calle Príncipe de Vergara|Calle Peñuelas|Plaza España|
        Avenida de la Libertad|Calle Zurbarán|Calle Luis Montoto"""),
    "DE": _split("""Hauptstraße|Schulstraße|Gartenstraße|Bahnhofstraße|Dorfstraße|Bergstraße|
        Birkenweg|Lindenstraße|Kirchstraße|Waldstraße|Ringstraße|Schillerstraße|Goethestraße|
        Mühlenweg|Jahnstraße|Amselweg|Wiesenweg|Friedrichstraße|Am Sportplatz|Rosenstraße|
        Mozartstraße|Blumenstraße|Feldstraße|Poststraße|Lessingstraße|Beethovenstraße|
        Kastanienallee|Karl-Marx-Straße|Königsallee|Müllerstraße|Schönhauser Allee|Grüner Weg|
        Buchenweg|Am Markt|Fröbelstraße|Gießener Straße"""),
}

# (city, region, postcode prefixes, landline area codes (national significant, no trunk 0), weight)
CITIES: dict[str, list[tuple[str, str, tuple[str, ...], tuple[str, ...], float]]] = {
    "US": [
        ("New York", "NY", ("100", "101", "102", "103", "104"), ("212", "718", "646"), 8.0),
        ("Los Angeles", "CA", ("900", "910", "913"), ("213", "310", "323", "818"), 4.0),
        ("Chicago", "IL", ("606",), ("312", "773"), 2.7),
        ("Houston", "TX", ("770",), ("713", "281", "832"), 2.3),
        ("Phoenix", "AZ", ("850",), ("602", "480"), 1.6),
        ("Philadelphia", "PA", ("191",), ("215", "267"), 1.5),
        ("San Antonio", "TX", ("782",), ("210",), 1.4),
        ("San Diego", "CA", ("921",), ("619", "858"), 1.4),
        ("Dallas", "TX", ("752",), ("214", "972"), 1.3),
        ("Seattle", "WA", ("981",), ("206",), 0.8),
        ("Boston", "MA", ("021",), ("617",), 0.7),
        ("Miami", "FL", ("331",), ("305", "786"), 0.5),
        ("Atlanta", "GA", ("303",), ("404", "678"), 0.5),
        ("Denver", "CO", ("802",), ("303", "720"), 0.7),
        ("Portland", "OR", ("972",), ("503", "971"), 0.6),
        ("Portland", "ME", ("041",), ("207",), 0.1),
        ("Springfield", "IL", ("627",), ("217",), 0.15),
        ("Springfield", "MA", ("011",), ("413",), 0.15),
    ],
    "GB": [
        ("London", "Greater London", ("SW1A", "SW3", "SE1", "E1", "E14", "N1", "N7", "NW3", "W1",
                                      "W2", "WC1", "EC1"), ("20",), 9.0),
        ("Manchester", "Greater Manchester", ("M1", "M4", "M14", "M20"), ("161",), 2.5),
        ("Birmingham", "West Midlands", ("B1", "B5", "B15", "B29"), ("121",), 2.5),
        ("Leeds", "West Yorkshire", ("LS1", "LS6", "LS11"), ("113",), 1.5),
        ("Glasgow", "Scotland", ("G1", "G2", "G12"), ("141",), 1.2),
        ("Edinburgh", "Scotland", ("EH1", "EH3", "EH10"), ("131",), 1.0),
        ("Liverpool", "Merseyside", ("L1", "L8", "L17"), ("151",), 1.0),
        ("Bristol", "South West", ("BS1", "BS6", "BS8"), ("117",), 1.0),
        ("Sheffield", "South Yorkshire", ("S1", "S10", "S11"), ("114",), 1.0),
        ("Cardiff", "Wales", ("CF10", "CF11", "CF24"), ("29",), 0.7),
        ("Newcastle upon Tyne", "Tyne and Wear", ("NE1", "NE2", "NE6"), ("191",), 0.6),
        ("Nottingham", "East Midlands", ("NG1", "NG5", "NG7"), ("115",), 0.6),
    ],
    "PL": [
        ("Warszawa", "mazowieckie", ("00", "01", "02", "03", "04"), ("22",), 6.0),
        ("Kraków", "małopolskie", ("30", "31"), ("12",), 2.6),
        ("Łódź", "łódzkie", ("90", "91", "92", "93", "94"), ("42",), 2.2),
        ("Wrocław", "dolnośląskie", ("50", "51", "52", "53", "54"), ("71",), 2.1),
        ("Poznań", "wielkopolskie", ("60", "61"), ("61",), 1.8),
        ("Gdańsk", "pomorskie", ("80",), ("58",), 1.5),
        ("Szczecin", "zachodniopomorskie", ("70", "71"), ("91",), 1.3),
        ("Bydgoszcz", "kujawsko-pomorskie", ("85",), ("52",), 1.1),
        ("Lublin", "lubelskie", ("20",), ("81",), 1.1),
        ("Białystok", "podlaskie", ("15",), ("85",), 0.9),
        ("Katowice", "śląskie", ("40",), ("32",), 0.9),
        ("Rzeszów", "podkarpackie", ("35",), ("17",), 0.6),
        ("Kielce", "świętokrzyskie", ("25",), ("41",), 0.6),
        ("Olsztyn", "warmińsko-mazurskie", ("10",), ("89",), 0.5),
        ("Opole", "opolskie", ("45",), ("77",), 0.4),
        ("Zielona Góra", "lubuskie", ("65",), ("68",), 0.4),
    ],
    "ES": [
        ("Madrid", "Comunidad de Madrid", ("28",), ("91",), 6.0),
        ("Barcelona", "Cataluña", ("08",), ("93",), 3.5),
        ("Valencia", "Comunidad Valenciana", ("46",), ("96",), 1.7),
        ("Sevilla", "Andalucía", ("41",), ("954",), 1.4),
        ("Zaragoza", "Aragón", ("50",), ("976",), 1.3),
        ("Málaga", "Andalucía", ("29",), ("952",), 1.2),
        ("Bilbao", "País Vasco", ("48",), ("94",), 0.7),
        ("Murcia", "Región de Murcia", ("30",), ("968",), 0.9),
        ("Palma", "Illes Balears", ("07",), ("971",), 0.8),
        ("Las Palmas de Gran Canaria", "Canarias", ("35",), ("928",), 0.8),
        ("A Coruña", "Galicia", ("15",), ("981",), 0.5),
        ("Valladolid", "Castilla y León", ("47",), ("983",), 0.6),
        ("Córdoba", "Andalucía", ("14",), ("957",), 0.6),
        ("Alicante", "Comunidad Valenciana", ("03",), ("965",), 0.7),
        ("San Sebastián", "País Vasco", ("20",), ("943",), 0.4),
    ],
    "DE": [
        ("Berlin", "Berlin", ("10", "12", "13"), ("30",), 6.0),
        ("Hamburg", "Hamburg", ("20", "21", "22"), ("40",), 3.0),
        ("München", "Bayern", ("80", "81"), ("89",), 2.5),
        ("Köln", "Nordrhein-Westfalen", ("50", "51"), ("221",), 1.8),
        ("Frankfurt am Main", "Hessen", ("60",), ("69",), 1.3),
        ("Stuttgart", "Baden-Württemberg", ("70",), ("711",), 1.0),
        ("Düsseldorf", "Nordrhein-Westfalen", ("40",), ("211",), 1.0),
        ("Leipzig", "Sachsen", ("04",), ("341",), 1.0),
        ("Dortmund", "Nordrhein-Westfalen", ("44",), ("231",), 1.0),
        ("Essen", "Nordrhein-Westfalen", ("45",), ("201",), 0.9),
        ("Bremen", "Bremen", ("28",), ("421",), 0.9),
        ("Dresden", "Sachsen", ("01",), ("351",), 0.9),
        ("Hannover", "Niedersachsen", ("30",), ("511",), 0.9),
        ("Nürnberg", "Bayern", ("90",), ("911",), 0.9),
        ("Würzburg", "Bayern", ("97",), ("931",), 0.3),
        ("Lübeck", "Schleswig-Holstein", ("23",), ("451",), 0.3),
        ("Saarbrücken", "Saarland", ("66",), ("681",), 0.3),
        ("Göttingen", "Niedersachsen", ("37",), ("551",), 0.2),
    ],
}

# Mobile prefixes (national significant number prefix) and total NSN length.
MOBILE_PREFIXES: dict[str, tuple[tuple[str, ...], int]] = {
    "US": ((), 10),  # US mobiles use geographic area codes
    "GB": (("7700", "7711", "7723", "7400", "7500", "7900", "7800", "7912", "7831", "7768",
            "7475", "7956"), 10),
    "PL": (("501", "502", "503", "509", "512", "515", "530", "531", "535", "570", "600", "601",
            "602", "604", "605", "609", "660", "663", "665", "668", "690", "691", "692", "693",
            "694", "695", "697", "698", "725", "726", "728", "730", "731", "732", "733", "734",
            "780", "783", "784", "785", "787", "790", "791", "792", "793", "794", "795", "796",
            "797", "798", "880", "881", "882", "883", "884", "885", "886", "887", "888", "889"), 9),
    "ES": (("600", "610", "620", "630", "640", "650", "660", "670", "680", "690", "611", "622",
            "633", "644", "655", "666", "677", "688", "699", "711", "722"), 9),
    "DE": (("151", "152", "157", "159", "160", "162", "163", "170", "171", "172", "173", "174",
            "175", "176", "177", "178", "179"), 11),
}
LANDLINE_NSN_LENGTH = {"US": 10, "GB": 10, "PL": 9, "ES": 9, "DE": 10}

EMAIL_DOMAINS: dict[str, list[tuple[str, float]]] = {
    "US": [("gmail.com", 0.38), ("yahoo.com", 0.14), ("outlook.com", 0.10), ("hotmail.com", 0.10),
           ("aol.com", 0.05), ("icloud.com", 0.13), ("comcast.net", 0.05), ("att.net", 0.05)],
    "GB": [("gmail.com", 0.35), ("hotmail.co.uk", 0.18), ("yahoo.co.uk", 0.12),
           ("btinternet.com", 0.12), ("outlook.com", 0.10), ("sky.com", 0.08), ("icloud.com", 0.05)],
    "PL": [("gmail.com", 0.35), ("wp.pl", 0.18), ("onet.pl", 0.15), ("o2.pl", 0.12),
           ("interia.pl", 0.12), ("op.pl", 0.08)],
    "ES": [("gmail.com", 0.45), ("hotmail.es", 0.20), ("yahoo.es", 0.10), ("telefonica.net", 0.08),
           ("outlook.es", 0.12), ("movistar.es", 0.05)],
    "DE": [("gmail.com", 0.25), ("gmx.de", 0.22), ("web.de", 0.22), ("t-online.de", 0.15),
           ("yahoo.de", 0.06), ("outlook.de", 0.10)],
}

# Nicknames / diminutives, formal name -> usual short forms (see module docstring for sources).
NICKNAMES: dict[str, tuple[str, ...]] = {
    # English
    "William": ("Bill", "Will", "Billy", "Liam"), "Robert": ("Bob", "Rob", "Bobby", "Bert"),
    "Elizabeth": ("Liz", "Beth", "Betty", "Lizzie", "Eliza"), "Richard": ("Rick", "Dick", "Rich"),
    "James": ("Jim", "Jimmy", "Jamie"), "John": ("Jack", "Johnny"), "Michael": ("Mike", "Mick"),
    "Christopher": ("Chris", "Kit"), "Thomas": ("Tom", "Tommy"), "Joseph": ("Joe", "Joey"),
    "Charles": ("Charlie", "Chuck"), "Daniel": ("Dan", "Danny"), "Matthew": ("Matt",),
    "Anthony": ("Tony",), "Steven": ("Steve",), "Stephen": ("Steve",), "Andrew": ("Andy", "Drew"),
    "Joshua": ("Josh",), "Kenneth": ("Ken", "Kenny"), "Timothy": ("Tim",), "Edward": ("Ed", "Ted", "Eddie"),
    "Jeffrey": ("Jeff",), "Nicholas": ("Nick",), "Jonathan": ("Jon",), "Benjamin": ("Ben",),
    "Samuel": ("Sam",), "Gregory": ("Greg",), "Alexander": ("Alex", "Sandy"), "Patrick": ("Pat", "Paddy"),
    "Raymond": ("Ray",), "Douglas": ("Doug",), "Zachary": ("Zach",), "Peter": ("Pete",),
    "Walter": ("Walt",), "Lawrence": ("Larry",), "Gerald": ("Jerry",), "Harold": ("Harry", "Hal"),
    "Henry": ("Harry", "Hank"), "Frederick": ("Fred",), "Philip": ("Phil",), "David": ("Dave",),
    "Ronald": ("Ron", "Ronnie"), "Donald": ("Don",), "Albert": ("Al", "Bert"), "Eugene": ("Gene",),
    "Margaret": ("Maggie", "Peggy", "Meg"), "Patricia": ("Pat", "Patty", "Trish"),
    "Jennifer": ("Jen", "Jenny"), "Katherine": ("Kate", "Katie", "Kathy"), "Catherine": ("Cathy", "Kate"),
    "Kathleen": ("Kathy",), "Rebecca": ("Becky", "Becca"), "Deborah": ("Debbie", "Deb"),
    "Susan": ("Sue", "Suzy"), "Jessica": ("Jess",), "Samantha": ("Sam",), "Victoria": ("Vicky", "Tori"),
    "Christine": ("Chris", "Tina"), "Christina": ("Tina",), "Barbara": ("Barb",), "Dorothy": ("Dot", "Dottie"),
    "Abigail": ("Abby",), "Alexandra": ("Alex",), "Kimberly": ("Kim",), "Pamela": ("Pam",),
    "Jacqueline": ("Jackie",), "Stephanie": ("Steph",), "Frances": ("Fran",), "Judith": ("Judy",),
    "Theresa": ("Terry",), "Teresa": ("Tess",), "Eleanor": ("Ellie", "Nell"), "Harriet": ("Hattie",),
    "Charlotte": ("Lottie",), "Amanda": ("Mandy",), "Melissa": ("Mel",), "Nicola": ("Nicky",),
    "Gillian": ("Jill",), "Natalie": ("Nat",),
    # Polish (zdrobnienia)
    "Katarzyna": ("Kasia", "Kaśka"), "Małgorzata": ("Gosia", "Małgosia"), "Aleksander": ("Olek",),
    "Aleksandra": ("Ola",), "Krzysztof": ("Krzysiek",), "Grzegorz": ("Grzesiek",), "Tomasz": ("Tomek",),
    "Stanisław": ("Staszek", "Stasiek"), "Jerzy": ("Jurek",), "Józef": ("Józek",), "Paweł": ("Pawełek",),
    "Wojciech": ("Wojtek",), "Łukasz": ("Łukasz",), "Michał": ("Michałek",), "Zbigniew": ("Zbyszek",),
    "Agnieszka": ("Aga", "Agusia"), "Elżbieta": ("Ela",), "Joanna": ("Asia",),
    # one key for both countries: the German nickname is the one the seeded data has always used
    "Magdalena": ("Lena",),
    "Dorota": ("Dorotka",), "Barbara_pl": ("Basia",), "Zofia": ("Zosia",), "Jadwiga": ("Jadzia",),
    "Teresa_pl": ("Tereska",), "Danuta": ("Danka",), "Bożena": ("Bożenka",), "Ewa": ("Ewka",),
    "Anna": ("Ania", "Anka"), "Maria": ("Marysia",), "Jakub": ("Kuba",), "Mateusz": ("Mati",),
    "Bartłomiej": ("Bartek",), "Przemysław": ("Przemek",), "Radosław": ("Radek",),
    "Władysław": ("Władek",), "Mieczysław": ("Mietek",), "Kazimierz": ("Kazik",), "Sławomir": ("Sławek",),
    "Jarosław": ("Jarek",), "Mirosław": ("Mirek",), "Zdzisław": ("Zdzisiek",), "Wiesław": ("Wiesiek",),
    "Janina": ("Janka",), "Krystyna": ("Krysia",), "Halina": ("Hala",), "Urszula": ("Ula",),
    "Justyna": ("Justa",), "Natalia": ("Nata",), "Weronika": ("Wera",), "Zuzanna": ("Zuzia",),
    "Wiktoria": ("Wiki",), "Dominika": ("Domi",), "Żaneta": ("Żanetka",),
    # Spanish (hipocorísticos)
    "José": ("Pepe",), "Francisco": ("Paco", "Curro", "Pancho"), "Ignacio": ("Nacho",),
    "Manuel": ("Manolo",), "Dolores": ("Lola",), "Pilar": ("Pili",), "Concepción": ("Concha", "Conchi"),
    "Guillermo": ("Guille",), "Jesús": ("Chus", "Chuy"), "Antonio": ("Toño", "Toni"),
    "Alejandro": ("Álex", "Alejo"), "Enrique": ("Quique",), "Rafael": ("Rafa",),
    "Fernando": ("Nando",), "Alberto": ("Beto",), "Eduardo": ("Edu", "Lalo"), "Josefa": ("Pepa",),
    "Francisca": ("Paqui", "Paca"), "Rosario": ("Charo",), "Mercedes": ("Merche",),
    "Encarnación": ("Encarna",), "Inmaculada": ("Inma",), "Montserrat": ("Montse",),
    "Remedios": ("Reme",), "Consuelo": ("Chelo",), "María Carmen": ("Maricarmen", "Mari Carmen"),
    "María Dolores": ("Loli", "Mariló"), "José Antonio": ("Josean",), "José Luis": ("Joselu",),
    "José Manuel": ("Chema",), "Francisco Javier": ("Fran",), "Santiago": ("Santi",),
    "Nicolás": ("Nico",), "Begoña": ("Bego",), "Lourdes": ("Lulú",), "Ángela": ("Angie",),
    # German (Kurzformen)
    "Johann": ("Hans",), "Johannes": ("Hannes", "Jo"), "Wolfgang": ("Wolf", "Wolfi"),
    "Jürgen": ("Jürg",), "Friedrich": ("Fritz",), "Wilhelm": ("Willi",), "Heinrich": ("Heinz",),
    "Andreas": ("Andi",), "Matthias": ("Matze", "Hias"), "Christian": ("Chris",), "Stefan": ("Steffen",),
    "Maximilian": ("Max",), "Sebastian": ("Basti",), "Tobias": ("Tobi",), "Florian": ("Flo",),
    "Alexander_de": ("Alex",), "Benedikt": ("Bene",), "Philipp": ("Phil",), "Dietrich": ("Dieter",),
    "Elisabeth": ("Lisa", "Elli", "Sisi"), "Katharina": ("Kathi", "Katja"), "Gabriele": ("Gabi",),
    "Susanne": ("Susi",), "Stefanie": ("Steffi",), "Franziska": ("Franzi",), "Johanna": ("Hanna",),
    "Angelika": ("Angie",), "Christa": ("Christl",), "Brigitte": ("Gitte",),
    "Gertrud": ("Trude",), "Hildegard": ("Hilde",), "Marlene": ("Leni",),
}
# keys with a locale tag (e.g. "Barbara_pl") are merged back into the plain name
_merged: dict[str, tuple[str, ...]] = {}
for _k, _v in NICKNAMES.items():
    _base = _k.split("_")[0]
    _merged[_base] = tuple(dict.fromkeys(_merged.get(_base, ()) + tuple(x for x in _v if x != _base)))
NICKNAMES = {k: v for k, v in _merged.items() if v}

# QWERTY neighbours (same row and the rows above/below), lower case.
_QWERTY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> dict[str, str]:
    pos = {ch: (r, c) for r, row in enumerate(_QWERTY_ROWS) for c, ch in enumerate(row)}
    out = {}
    for ch, (r, c) in pos.items():
        if not ch.isalpha():
            continue
        near = []
        for dr, dc in ((0, -1), (0, 1), (-1, 0), (-1, 1), (1, -1), (1, 0)):
            rr, cc = r + dr, c + dc
            if 1 <= rr < len(_QWERTY_ROWS) and 0 <= cc < len(_QWERTY_ROWS[rr]):
                near.append(_QWERTY_ROWS[rr][cc])
        out[ch] = "".join(near)
    return out


QWERTY_NEIGHBOURS = _qwerty_neighbours()

CAMPAIGNS = (
    ("newsletter-signup-2021", "2021-01-10", "2021-12-20"),
    ("spring-sale-2022", "2022-03-01", "2022-04-30"),
    ("black-friday-2022", "2022-11-20", "2022-11-30"),
    ("loyalty-relaunch-2023", "2023-02-01", "2023-03-31"),
    ("summer-sweepstakes-2023", "2023-06-15", "2023-08-31"),
    ("black-friday-2023", "2023-11-20", "2023-11-30"),
    ("new-year-survey-2024", "2024-01-05", "2024-02-15"),
    ("app-launch-2024", "2024-05-01", "2024-06-30"),
    ("black-friday-2024", "2024-11-22", "2024-12-02"),
    ("spring-sale-2025", "2025-03-01", "2025-04-30"),
)

TICKET_SUBJECTS = (
    "Where is my order?", "Refund request", "Change of address", "Cannot log in",
    "Loyalty points missing", "Invoice question", "Damaged item", "Cancel subscription",
    "Update phone number", "Wrong size delivered", "Payment failed", "Delete my data (GDPR)",
    "Unsubscribe from marketing", "Coupon does not work", "Duplicate charge",
)


def polish_feminine(surname: str) -> str:
    for masc, fem in (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka"), ("ny", "na")):
        if surname.endswith(masc):
            return surname[: -len(masc)] + fem
    return surname


def zipf_weights(n: int, shift: float = 6.0, power: float = 1.0) -> np.ndarray:
    w = 1.0 / (np.arange(n) + shift) ** power
    return w / w.sum()


@dataclass(frozen=True)
class Pools:
    """Everything sampled by index. Names are object arrays; per-(locale, gender) slices index
    into the global ``first_names`` array."""

    first_names: np.ndarray  # all first names, all locales
    first_slices: dict  # (locale_idx, gender 0=M 1=F) -> (np.ndarray of global idx, weights)
    surnames_m: np.ndarray  # masculine form
    surnames_f: np.ndarray  # feminine form (differs for Polish)
    surname_slices: dict  # locale_idx -> (global idx, weights)
    streets: np.ndarray
    street_slices: dict  # country_idx -> global idx array
    city_name: np.ndarray
    city_region: np.ndarray
    city_country: np.ndarray  # country idx per city
    city_postcode_prefixes: tuple  # tuple of tuples per city
    city_landline_prefixes: tuple  # per city: area code + first subscriber digit (validated)
    city_slices: dict  # country_idx -> (global idx, weights)
    mobile_prefixes: dict  # country_idx -> np.ndarray[str]
    nickname_of: dict  # first name -> tuple of nicknames


def _valid(country: str, nsn: str) -> bool:
    import phonenumbers

    try:
        num = phonenumbers.parse("+" + CALLING_CODE[country] + nsn)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(num) and phonenumbers.region_code_for_number(num) == country


def _prefix_ok(country: str, prefix: str, length: int) -> bool:
    rest = length - len(prefix)
    samples = ("0" * rest, "9" * rest, ("2468013579" * 3)[:rest], ("5317290864" * 3)[:rest])
    return all(_valid(country, prefix + s) for s in samples)


@lru_cache(maxsize=1)
def pools() -> Pools:
    first, first_slices = [], {}
    sur_m, sur_f, sur_slices = [], [], {}
    for li, loc in enumerate(LOCALES):
        for gi, g in enumerate(("M", "F")):
            names = list(dict.fromkeys(FIRST_NAMES[loc][g]))
            idx = np.arange(len(first), len(first) + len(names))
            first.extend(names)
            first_slices[(li, gi)] = (idx, zipf_weights(len(names)))
        names = list(dict.fromkeys(SURNAMES[loc]))
        idx = np.arange(len(sur_m), len(sur_m) + len(names))
        sur_m.extend(names)
        sur_f.extend(polish_feminine(n) if loc == "pl_PL" else n for n in names)
        sur_slices[li] = (idx, zipf_weights(len(names), shift=4.0, power=0.9))
    streets, street_slices = [], {}
    for ci, c in enumerate(COUNTRIES):
        street_slices[ci] = np.arange(len(streets), len(streets) + len(STREETS[c]))
        streets.extend(STREETS[c])
    cname, cregion, ccountry, cpost, carea, city_slices = [], [], [], [], [], {}
    for ci, c in enumerate(COUNTRIES):
        start = len(cname)
        weights = []
        for name, region, post, areas, w in CITIES[c]:
            length = LANDLINE_NSN_LENGTH[c]
            # landline prefix = area code + first subscriber digit, kept when valid
            ok = tuple(a + d for a in areas for d in "23456789" if _prefix_ok(c, a + d, length))
            if not ok:
                raise ValueError(f"no valid area code for {name}, {c}")
            cname.append(name)
            cregion.append(region)
            ccountry.append(ci)
            cpost.append(post)
            carea.append(ok)
            weights.append(w)
        w = np.asarray(weights)
        city_slices[ci] = (np.arange(start, len(cname)), w / w.sum())
    mobile = {}
    for ci, c in enumerate(COUNTRIES):
        prefixes, length = MOBILE_PREFIXES[c]
        mobile[ci] = np.asarray([p for p in prefixes if _prefix_ok(c, p, length)], dtype=object)
    return Pools(
        first_names=np.asarray(first, dtype=object),
        first_slices=first_slices,
        surnames_m=np.asarray(sur_m, dtype=object),
        surnames_f=np.asarray(sur_f, dtype=object),
        surname_slices=sur_slices,
        streets=np.asarray(streets, dtype=object),
        street_slices=street_slices,
        city_name=np.asarray(cname, dtype=object),
        city_region=np.asarray(cregion, dtype=object),
        city_country=np.asarray(ccountry),
        city_postcode_prefixes=tuple(cpost),
        city_landline_prefixes=tuple(carea),
        city_slices=city_slices,
        mobile_prefixes=mobile,
        nickname_of=NICKNAMES,
    )
